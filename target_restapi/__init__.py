"""target-restapi: a Singer target that delivers records to any HTTP endpoint."""
