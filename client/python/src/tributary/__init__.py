"""Tributary's protobuf contracts, generated from proto/ (see generate.sh)."""
