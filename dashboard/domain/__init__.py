"""The domain: one module or package per feature, holding its rules and its writes (role
check, validation, one transaction, an audit row). Pages, jobs and the API call these; reads
for screens live in ``queries/``."""
