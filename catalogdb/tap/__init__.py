"""The TAP service: ADQL translation, VOTable output, UWS jobs, VOSI and the published tables."""
