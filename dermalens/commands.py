"""Operator commands: `flask --app app create-user | users ... | create-token | audit export | doctor`.

The schema is Flask-Migrate's: `flask --app app db upgrade` creates or upgrades it."""

import sys

import click
from flask import Flask

from dermalens import accounts, audit, maintenance, tokens
from dermalens.extensions import db
from dermalens.forms import MIN_PASSWORD_LENGTH
from dermalens.records import User


def register(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    def create_user(username, password_stdin):
        """Create a user account (password from a prompt, or stdin with --password-stdin)."""
        password = _read_password(password_stdin)
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
        user = _existing_user(username)
        try:
            record, token = tokens.issue_token(db.session, user, name)
        except tokens.TokenError as error:
            raise click.ClickException(str(error)) from None
        audit.record(db.session, "token_created", user=user, record_id=record.public_id,
                     remote_address="command line", detail=name)
        click.echo(token)

    @app.cli.group("users")
    def users_group():
        """Accounts: reset a password, disable or enable an account (each ends its sessions)."""

    @users_group.command("reset-password")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
    def reset_password(username, password_stdin):
        """Give USERNAME a new password and sign them out everywhere."""
        user = _existing_user(username)
        accounts.reset_password(db.session, user, _read_password(password_stdin))
        audit.record(db.session, "password_reset", user=user, remote_address="command line")
        click.echo(f"New password set for {user.username}; every session of the account ended.")

    @users_group.command("disable")
    @click.argument("username")
    def disable(username):
        """Stop USERNAME signing in or using API tokens, and end their sessions."""
        _set_disabled(username, True)

    @users_group.command("enable")
    @click.argument("username")
    def enable(username):
        """Let a disabled USERNAME sign in again."""
        _set_disabled(username, False)

    @app.cli.group("audit")
    def audit_group():
        """The audit trail."""

    @audit_group.command("export")
    @click.option("--out", type=click.File("w"), default="-", help="CSV file (default: stdout).")
    def audit_export(out):
        """Write the whole audit trail as CSV, oldest first."""
        count = audit.export_csv(db.session, out)
        click.echo(f"Exported {count} audit events.", err=True)

    @audit_group.command("verify")
    def audit_verify():
        """Check the audit trail's hash chain; exit 1 naming the first broken event."""
        checked, broken, head = audit.verify_chain(db.session)
        if broken is not None:
            click.echo(f"Audit trail broken at event {broken}: it was changed, an event before it "
                       f"was removed, or it was inserted out of order ({checked} events intact "
                       "before it).", err=True)
            raise SystemExit(1)
        click.echo(f"Audit trail intact: {checked} events; head hash {head or 'none'}.")

    @app.cli.command("doctor")
    @click.option("--fix", is_flag=True, help="Delete orphan files (files without a record).")
    def doctor(fix):
        """Check that every analysis has its files and every stored file has its analysis."""
        report = maintenance.check_storage(db.session, app.extensions["files"])
        for name in report.orphan_files:
            click.echo(f"orphan file (no analysis): {name}")
        for public_id in report.records_missing_files:
            click.echo(f"analysis {public_id} is missing its image or heatmap file")
        if fix and report.orphan_files:
            maintenance.remove_orphans(app.extensions["files"], report.orphan_files)
            click.echo(f"removed {len(report.orphan_files)} orphan files")
        click.echo(f"{report.analyses} analyses, {report.files} files, "
                   f"{len(report.orphan_files)} orphan files, "
                   f"{len(report.records_missing_files)} analyses missing files")
        if report.records_missing_files or (report.orphan_files and not fix):
            raise SystemExit(1)


def _read_password(from_stdin: bool) -> str:
    """A new password from stdin or a prompt; :raise click.ClickException: too short."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def _existing_user(username: str) -> User:
    user = accounts.find_user(db.session, username)
    if user is None:
        raise click.ClickException(f"No user named {username}.")
    return user


def _set_disabled(username: str, disabled: bool) -> None:
    user = _existing_user(username)
    accounts.set_disabled(db.session, user, disabled)
    audit.record(db.session, "account_disabled" if disabled else "account_enabled", user=user,
                 remote_address="command line")
    click.echo(f"{'Disabled' if disabled else 'Enabled'} {user.username}"
               + ("; every session of the account ended." if disabled else "."))
