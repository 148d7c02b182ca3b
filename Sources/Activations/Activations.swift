// Module Activations: see ../shared/design/nsae.md §2.
