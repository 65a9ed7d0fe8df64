"""The project's date formats (settings ``FORMAT_MODULE_PATH``), over Django's locale ones."""
