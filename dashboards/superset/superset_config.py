# Superset configuration for MIM's local stack (docker-compose.yml). Secrets
# come from the environment; Superset keeps its own metadata in SQLite in the
# container's volume.
import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = "sqlite:////app/superset_home/superset.db"
FEATURE_FLAGS = {"ENABLE_TEMPLATE_PROCESSING": False}
WTF_CSRF_ENABLED = True
