"""Operator commands: `flask --app app init-db | create-user NAME | create-token NAME`."""

import sys

import click
from flask import Flask

from sqlalchemy import select

from dermalens import accounts, tokens
from dermalens.database import create_schema
from dermalens.extensions import db
from dermalens.forms import MIN_PASSWORD_LENGTH
from dermalens.records import User


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

    @app.cli.command("create-token")
    @click.argument("username")
    @click.option("--name", default="command line", show_default=True, help="Name of the token.")
    def create_token(username, name):
        """Create an API token for USERNAME and print it (only the token, once)."""
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"No user named {username}.")
        try:
            _, token = tokens.issue_token(db.session, user, name)
        except tokens.TokenError as error:
            raise click.ClickException(str(error)) from None
        click.echo(token)
