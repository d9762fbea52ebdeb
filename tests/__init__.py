"""The test suite, one folder per source package (``fixgw``, ``replication``, ``venues``,
``utilities``) plus the cross-package ones (``e2e``, ``interop``, ``acceptance``).

It is a package so that helpers are imported by their full name (``tests.support.broker``,
``tests.interop.quickfix_initiator``) with no ``sys.path`` edits: pytest's default ``prepend``
import mode puts the directory above the outermost package (the project root) on ``sys.path``,
and ``pythonpath = ["."]`` in ``pyproject.toml`` says so explicitly. It also lets two folders
hold test files of the same base name without clashing.
"""
