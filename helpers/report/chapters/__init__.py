"""One module per notebook: that chapter's experiment, tables, sentences and figures. No chapter imports
another; what a later chapter needs of an earlier one it reads from the results tables."""
