"""Web forms (Flask-WTF). CSRF is enforced for every POST by CSRFProtect; these classes add
field rendering and the account rules. Analysis fields are validated by analysis_service, the one
place shared with the API."""

from flask_wtf import FlaskForm
from wtforms import FileField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length, Regexp

from dermalens.lesions import BODY_SITE_LABELS, BODY_SITES, SEXES
from dermalens.outcomes import OUTCOME_DIAGNOSES, OUTCOME_SOURCES

USERNAME_RULE = Regexp(r"^[A-Za-z0-9_.-]+$",
                       message="Use letters, digits, dots, dashes and underscores only.")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def password_length(subject: str) -> Length:
    return Length(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH,
                  message=f"{subject} needs at least {MIN_PASSWORD_LENGTH} characters (at most "
                          f"{MAX_PASSWORD_LENGTH}); a few words in a row are easy to remember and hard "
                          "to guess.")


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class RegisterForm(FlaskForm):
    username = StringField("Username", validators=[
        InputRequired(message="Choose a username."),
        Length(3, 64, message="A username has 3 to 64 characters."), USERNAME_RULE])
    password = PasswordField("Password", validators=[
        InputRequired(message="Choose a password."), password_length("A password")])
    confirm = PasswordField("Repeat password", validators=[
        InputRequired(message="Repeat the password."),
        EqualTo("password", message="The passwords do not match.")])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    password = PasswordField("New password", validators=[InputRequired(), password_length("The new password")])
    confirm = PasswordField("Repeat the new password", validators=[
        InputRequired(), EqualTo("password", message="The new passwords do not match.")])


class AnalysisForm(FlaskForm):
    image = FileField("Dermoscopic image (JPEG or PNG)")
    patient_ref = StringField("Patient reference")
    lesion_ref = StringField("Lesion reference")
    age = StringField("Age (years)")
    sex = SelectField("Sex", choices=[SelectChoice("", "Not recorded")]
                      + [SelectChoice(sex, sex.capitalize()) for sex in SEXES])
    site = SelectField("Body site", choices=[SelectChoice("", "Not recorded")]
                       + [SelectChoice(site, BODY_SITE_LABELS[site]) for site in BODY_SITES])
    note = TextAreaField("Note")


class OutcomeForm(FlaskForm):
    """What the lesion turned out to be (validated by `outcomes.parse_outcome`)."""

    diagnosis = SelectField("Diagnosis", choices=[SelectChoice("", "Choose…")]
                            + [SelectChoice(code, name) for code, name in OUTCOME_DIAGNOSES.items()])
    source = SelectField("Established by", choices=[SelectChoice("", "Choose…")]
                         + [SelectChoice(code, name) for code, name in OUTCOME_SOURCES.items()])
    date = StringField("Date (YYYY-MM-DD, optional)")
    note = TextAreaField("Note (optional)")
