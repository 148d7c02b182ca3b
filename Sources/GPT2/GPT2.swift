// Module GPT2: see ../shared/design/nsae.md §2.
