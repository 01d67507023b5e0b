"""The B3 quotes pipeline's library: the lake's contract, storage, configuration, the runtime (local
or AWS), local mode, the catalog commands, the charts and deployment. One namespace, so that the
install adds one name to site-packages (docs/design.md). It imports nothing: the job's and the
Lambda's zips carry it beside the one or two packages they need."""
