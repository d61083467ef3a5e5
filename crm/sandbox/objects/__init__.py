"""CRM objects: records (models), validation, search and the routes that serve them."""
