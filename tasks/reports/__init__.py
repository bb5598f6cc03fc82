"""The report's files: charts (`charts`), Markdown, HTML and CSV (`documents`), written together by
`writer.write_report`. The figures themselves are computed in `models.reporting`."""
