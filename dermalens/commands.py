"""Operator commands: `flask --app app init-db`, `flask --app app create-user NAME`."""

import sys

import click
from flask import Flask

from dermalens import accounts
from dermalens.database import create_schema
from dermalens.extensions import db
from dermalens.forms import MIN_PASSWORD_LENGTH


def register(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db():
        """Create the database tables if they do not exist (safe to run again)."""
        create_schema()
        click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    def create_user(username, password_stdin):
        """Create a user account (password from a prompt, or stdin with --password-stdin)."""
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise click.ClickException(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
        try:
            accounts.create_user(db.session, username, password)
        except accounts.AccountError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Created user {username}.")
