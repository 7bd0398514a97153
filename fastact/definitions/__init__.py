"""The activation definitions, grouped by family.

Each module holds plain scalar definitions (see ``fastact._elementwise``);
the kernels are generated from them.
"""
