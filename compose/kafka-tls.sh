#!/usr/bin/env bash
# docker compose's kafka-tls service: the certificates of Kafka's client listener, made once per
# stack with the JDK's keytool (in the Kafka image). Writes, when they are not there yet:
#   $KAFKA_TLS_SECRETS_DIR/kafka.keystore.p12    the broker's key and certificate chain (0600)
#   $KAFKA_TLS_SECRETS_DIR/keystore-credentials  the keystore's generated password (0600)
#   $KAFKA_TLS_SECRETS_DIR/ca.pem                what the broker trusts (its own listener)
#   $KAFKA_TLS_SECRETS_DIR/kafka_server_jaas.conf  the broker's logins: the admin's (PLAIN) and
#                                                the pipeline's principals (SCRAM) (0600)
#   $KAFKA_TLS_SECRETS_DIR/healthcheck.properties  the admin's login for the health check (0600)
#   $KAFKA_TLS_CA_DIR/ca.pem                     the only file clients get: the CA certificate
# The CA's private key exists only while this script runs: nothing can sign another certificate
# later. New certificates: remove the two volumes (`docker compose down -v`).
# Settings: KAFKA_TLS_SAN (the broker's names, keytool's SAN syntax), KAFKA_ADMIN_PASSWORD, and
# KAFKA_TLS_OWNER (user:group the broker runs as, when this runs as root).
set -euo pipefail

secrets=${KAFKA_TLS_SECRETS_DIR:-/etc/kafka/secrets}
ca_dir=${KAFKA_TLS_CA_DIR:-/opt/kafka-ca}
san=${KAFKA_TLS_SAN:-dns:kafka,dns:localhost}
admin=${KAFKA_ADMIN_PRINCIPAL:-userstream_admin}
: "${KAFKA_ADMIN_PASSWORD:?the admin principal password is needed}"
umask 077

if [[ -s $secrets/kafka.keystore.p12 && -s $ca_dir/ca.pem ]]; then
  echo "kafka-tls: the certificates exist ($secrets, $ca_dir)"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Passwords go to keytool through the environment, never on its command line.
  KEYSTORE_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  export KEYSTORE_PASSWORD
  store=(-storetype PKCS12 -storepass:env KEYSTORE_PASSWORD)
  keytool -genkeypair -alias ca -keyalg RSA -keysize 3072 -validity 3650 -ext bc:c \
    -dname "CN=userstream Kafka CA" -keystore "$work/ca.p12" "${store[@]}"
  keytool -exportcert -rfc -alias ca -keystore "$work/ca.p12" "${store[@]}" -file "$work/ca.pem"
  keytool -genkeypair -alias kafka -keyalg RSA -keysize 3072 -validity 3650 \
    -dname "CN=kafka" -keystore "$work/kafka.keystore.p12" "${store[@]}"
  keytool -certreq -alias kafka -keystore "$work/kafka.keystore.p12" "${store[@]}" \
    -file "$work/kafka.csr"
  keytool -gencert -rfc -alias ca -keystore "$work/ca.p12" "${store[@]}" -validity 3650 \
    -ext "SAN=$san" -ext KU=digitalSignature,keyEncipherment -ext EKU=serverAuth,clientAuth \
    -infile "$work/kafka.csr" -outfile "$work/kafka.pem"
  keytool -importcert -noprompt -alias ca -file "$work/ca.pem" \
    -keystore "$work/kafka.keystore.p12" "${store[@]}"
  keytool -importcert -alias kafka -file "$work/kafka.pem" \
    -keystore "$work/kafka.keystore.p12" "${store[@]}"
  printf '%s' "$KEYSTORE_PASSWORD" > "$work/keystore-credentials"
  mkdir -p "$secrets" "$ca_dir"
  cp "$work/kafka.keystore.p12" "$work/keystore-credentials" "$work/ca.pem" "$secrets/"
  install -m 0644 "$work/ca.pem" "$ca_dir/ca.pem"
  echo "kafka-tls: made a CA and the broker's certificate for $san"
fi

chmod 0755 "$ca_dir"  # read by the clients, which run as other users

# Rewritten every start, so that a changed admin password reaches the broker and its check.
# The admin logs in with PLAIN, which knows no other user; the pipeline's principals use
# SCRAM-SHA-512, whose credentials provisioning keeps in the cluster's metadata.
cat > "$secrets/kafka_server_jaas.conf" <<EOF
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
    username="$admin" password="$KAFKA_ADMIN_PASSWORD" user_$admin="$KAFKA_ADMIN_PASSWORD";
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
EOF
cat > "$secrets/healthcheck.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$admin" password="$KAFKA_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$secrets/ca.pem
EOF
if [[ -n ${KAFKA_TLS_OWNER:-} ]]; then
  chown -R "$KAFKA_TLS_OWNER" "$secrets"
fi
