"""Feed documents: Atom 1.0 and RSS 2.0 (through feedgen) and JSON Feed 1.1."""
