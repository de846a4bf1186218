"""Test and benchmark harness code: kept out of the tabrepro package (and out of the bento)."""
