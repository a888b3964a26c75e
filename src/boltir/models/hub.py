"""Upload a saved model directory to the Hugging Face Hub (``huggingface_hub``: create the repo, upload the folder).

``HF_ENDPOINT`` picks the Hub (a private hub or a local stand-in), ``HF_TOKEN`` or ``token=`` the credentials.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from ..errors import ConfigError, HubError
from .card import point_card_at
from .config import CONFIG_NAME


def push_directory(directory: str | os.PathLike[str], repo_id: str, private: bool | None = None, token: str | None = None,
                   commit_message: str = "Upload boltir model") -> str:
    """Create ``repo_id`` (if needed) and upload ``directory`` to it; returns the commit's URL.

    boltir's model card is pointed at ``repo_id`` in the upload (its snippet then loads the model from the Hub);
    the directory itself is not changed.
    """
    directory = Path(directory)
    if not (directory / CONFIG_NAME).is_file():
        raise ConfigError(f"{directory} is not a saved boltir model (no {CONFIG_NAME}): save it with save_pretrained first.")
    if constants.HF_HUB_OFFLINE:
        raise HubError(f"cannot push {directory} to {repo_id}: HF_HUB_OFFLINE is set; unset it on a machine that reaches "
                       f"{constants.ENDPOINT}.")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="boltir-push-") as tmp:
        staged = Path(tmp) / directory.name
        shutil.copytree(directory, staged)
        point_card_at(staged, repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            commit = api.upload_folder(folder_path=staged, repo_id=repo_id, repo_type="model", commit_message=commit_message)
        except OfflineModeIsEnabled as exc:
            raise HubError(f"cannot push to {repo_id}: huggingface_hub is in offline mode ({exc}).") from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            hint = "pass a token with write access (token=, HF_TOKEN or `hf auth login`)" if status in (401, 403) else \
                "check the repository id and your rights on it"
            raise HubError(f"the Hub at {api.endpoint} refused pushing to {repo_id} (HTTP {status}): {hint}.") from exc
        except OSError as exc:  # connection refused, DNS, timeouts (httpx errors are not OSErrors: below)
            raise HubError(f"cannot reach the Hub at {api.endpoint} to push {repo_id}: {exc}.") from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("httpx", "httpcore", "requests", "urllib3")):
                raise HubError(f"cannot reach the Hub at {api.endpoint} to push {repo_id}: {exc}.") from exc
            raise
    return str(commit.commit_url if hasattr(commit, "commit_url") else commit)


__all__ = ["push_directory"]
