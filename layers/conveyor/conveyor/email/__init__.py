"""Email: the `email.send` job type, sent with Amazon SES v2, and the templates that ship in the layer."""
