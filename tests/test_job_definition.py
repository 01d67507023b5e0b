"""infra/glue-job.json as bootstrap sends it: the AWS CLI's own validation of create-job and update-job.

Not among the tests run under Glue's versions: the definition is sent by bootstrap's AWS CLI,
whose botocore (requirements-dev.txt) knows job run queuing; Glue's boto3 1.34 does not.
"""

from __future__ import annotations

import botocore.session
from botocore.validate import ParamValidator

from tests.glue_harness import JOB, JOB_VALUES, render_job_definition

VALUES = JOB_VALUES


def test_job_definition_queues_runs_and_passes_the_cli_parameter_validation():
    definition = render_job_definition(VALUES)
    # A run started while another runs waits (job run queuing covers the job's MaxConcurrentRuns).
    assert definition["JobRunQueuingEnabled"] is True and definition["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    model = botocore.session.get_session().get_service_model("glue")
    for operation, params in (("CreateJob", {"Name": JOB, **definition}),
                              ("UpdateJob", {"JobName": JOB, "JobUpdate": definition})):
        report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()
    broken = {**definition, "JobRunQueuingEnabled": "yes"}  # the check is not vacuous
    assert ParamValidator().validate({"Name": JOB, **broken}, model.operation_model("CreateJob").input_shape).has_errors()
