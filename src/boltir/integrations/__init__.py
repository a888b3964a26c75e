"""Adapters to other ecosystems: PyTerrier pipelines and ONNX export. Nothing else in boltir imports them.

Each adapter imports its third-party package at the top and is imported by the user only:
``boltir.integrations.pyterrier`` (also ``boltir.pyterrier``) and ``boltir.integrations.onnx``.
"""
