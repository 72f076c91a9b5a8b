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
