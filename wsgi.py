from registry_ext import create_worker_app

app = create_worker_app()
