#!/bin/sh
# Creates the secrets of the production profile in ./secrets (one file each, mode 600), keeping
# any that exist. Rotation: see README "Deploy". Needs openssl.
set -eu
dir=${1:-secrets}
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

make_secret() { # name, command printing the value
    if [ -s "$dir/$1" ]; then
        echo "kept    $dir/$1"
    else
        sh -c "$2" > "$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1"
        echo "created $dir/$1"
    fi
}

make_secret django_secret_key "openssl rand -base64 64 | tr -d '\n='"
make_secret field_encryption_key "openssl rand -hex 32"
make_secret postgres_password "openssl rand -hex 24"
make_secret redis_password "openssl rand -hex 24"
make_secret metrics_token "openssl rand -hex 24"
make_secret jwt_private_key.pem "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null"
# Public keys of previous JWT signing keys (empty until the first rotation).
[ -e "$dir/jwt_previous_public_keys.pem" ] || : > "$dir/jwt_previous_public_keys.pem"
# Compose bind-mounts each file as it is, and the containers run as other uids (10001 for the
# app, 999 for postgres and redis): the files are world-readable, the directory is not (700),
# so only root and the owner on the host can reach them.
chmod 644 "$dir"/*
chmod 700 "$dir"
