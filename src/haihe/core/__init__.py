"""Kit shared by every domain: settings, database, errors, identity, masking, i18n."""
