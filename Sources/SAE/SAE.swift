// Module SAE: see ../shared/design/nsae.md §2.
