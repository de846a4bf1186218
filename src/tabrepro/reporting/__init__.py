"""Reporting (`tabrepro report`): what a change did to the model, as Markdown for a pull request, with tolerances."""
