"""Cloud hash signing: the signing approval password, approvals (signature
activation data) and the signing service that both APIs call."""
