"""The ``flowers-tfx`` command line: argument parsing, and the one place
(``main``) where errors become exit statuses.

``main.py`` builds the parser and mounts the commands of the other modules:
``data_commands`` (synth, convert, inspect), ``model_commands`` (predict,
models list/promote/rollback) and ``vertex_commands`` (compile, submit,
schedule). ``options.py`` holds what they share: the configuration options.
Heavy libraries are imported only when a command runs, so ``--help`` is quick.
"""
