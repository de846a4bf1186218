"""The data set's declaration: its spec, the one token grammar, and adapters for tables, Arrow chunks and records."""
