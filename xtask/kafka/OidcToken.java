// Prints a JWT that the local Kafka's OIDC listener accepts, signed (ES256) with the harness's
// signing key: a token for Kafka's Java client, whose OAUTHBEARER login reads one from a file
// (`sasl.oauthbearer.token.endpoint.url=file:///...`). Run with the JDK's single-file launcher:
//   java xtask/kafka/OidcToken.java <signing.key> <sub> <aud> <iss> <seconds valid>
// The key is target/kafka/run/oauth/signing.key (PKCS#8 PEM, P-256); the header names its key
// id, purekafka-test, as jwks.json does. The claims are sub, aud, iss, iat, exp and scope.
// A token for another audience or issuer, or already expired (negative seconds), is one the
// listener must refuse.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;

public class OidcToken {
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: OidcToken <signing.key> <sub> <aud> <iss> <seconds valid>");
            System.exit(2);
        }
        String body = Files.readString(Path.of(args[0]))
            .replaceAll("-----[A-Z ]+-----", "")
            .replaceAll("\\s", "");
        PrivateKey key = KeyFactory.getInstance("EC")
            .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(body)));
        long now = System.currentTimeMillis() / 1000;
        String header = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"purekafka-test\"}";
        String claims = String.format(
            "{\"sub\":%s,\"aud\":%s,\"iss\":%s,\"iat\":%d,\"exp\":%d,\"scope\":\"test\"}",
            quote(args[1]), quote(args[2]), quote(args[3]), now, now + Long.parseLong(args[4]));
        String signed = encode(header.getBytes(StandardCharsets.UTF_8)) + "."
            + encode(claims.getBytes(StandardCharsets.UTF_8));
        // JWS wants the signature as r || s (RFC 7518, 3.4), not DER.
        Signature es256 = Signature.getInstance("SHA256withECDSAinP1363Format");
        es256.initSign(key);
        es256.update(signed.getBytes(StandardCharsets.US_ASCII));
        System.out.print(signed + "." + encode(es256.sign()));
    }

    static String encode(byte[] bytes) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
