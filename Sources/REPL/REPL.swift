// Module REPL: see ../shared/design/nsae.md §2.
