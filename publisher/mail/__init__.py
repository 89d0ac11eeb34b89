"""Email: the rendered-once letter, its MIME encoding and DKIM signature."""
