"""HTTP listeners: the ops endpoints today; the Lambda API and API Gateway front doors join here."""
