from registry_ext import create_app

app = create_app()
