"""How the shipped model is made and measured: data reading, augmentation, the training loop,
calibration, evaluation and the model card.

Never imported by the web app (a test checks it); it imports the app's image pipeline and
inference code, so that training, calibration and evaluation see images exactly as served.
"""
