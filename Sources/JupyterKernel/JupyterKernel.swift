// Module JupyterKernel: see ../shared/design/nsae.md §2.
