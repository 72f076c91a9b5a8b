"""The fixed vocabulary of the product: diagnostic classes, their groups, and metadata values.

Everything that must agree between training, serving, the database and the reports lives here,
so that a class index means the same thing everywhere.
"""

# Output order of the network. Never reorder: the shipped weights depend on it.
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

CLASS_NAMES = {
    "akiec": "Actinic keratosis / intraepithelial carcinoma (Bowen's)",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis-like lesion",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevus",
    "vasc": "Vascular lesion",
}

CLASS_GROUPS = {
    "akiec": "malignant / pre-malignant",
    "bcc": "malignant",
    "bkl": "benign",
    "df": "benign",
    "mel": "malignant",
    "nv": "benign",
    "vasc": "benign",
}

# Classes summed into the "malignant probability" (ISIC convention, akiec included).
MALIGNANT_CLASSES = ("akiec", "bcc", "mel")

# What the shipped classifier was not built for (the model card's known limits, in one
# sentence): shown beside every result, on screen and in the PDF report.
MODEL_LIMITS = ("Trained on HAM10000 dermoscopic images, mostly of light skin types (Fitzpatrick "
                "I-IV). Not validated for phone photos, ink-marked lesions, non-dermoscopic images, "
                "or images re-coloured away from the dermoscope's standard settings.")

SEXES = ("male", "female")

# HAM10000 `localization` vocabulary, without "unknown" (unknown is encoded as absence).
BODY_SITES = (
    "abdomen", "acral", "back", "chest", "ear", "face", "foot", "genital", "hand",
    "lower extremity", "neck", "scalp", "trunk", "upper extremity",
)

BODY_SITE_LABELS = {
    "abdomen": "Abdomen (anterior torso)",
    "acral": "Acral (palms / soles)",
    "back": "Back (posterior torso)",
    "chest": "Chest (anterior torso)",
    "ear": "Ear",
    "face": "Face",
    "foot": "Foot",
    "genital": "Genital",
    "hand": "Hand",
    "lower extremity": "Lower extremity",
    "neck": "Neck",
    "scalp": "Scalp",
    "trunk": "Trunk (unspecified)",
    "upper extremity": "Upper extremity",
}

MIN_AGE, MAX_AGE = 0, 120
