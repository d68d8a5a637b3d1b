"""Tables, plots and the tokenization view of the report, built from the results files."""
