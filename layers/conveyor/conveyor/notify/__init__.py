"""Notifications: delivery over a contact's preferred channels (email, SMS, in-app feed)."""
