// Writes PKCS12 key and trust stores from the harness's PEM files, for brokers older than
// Kafka 2.7, which read no PEM stores (KIP-651). Run with the JDK's single-file launcher:
//   java xtask/kafka/Pkcs12.java <tls dir> <password>
// It reads ca.pem, broker.pem/.key and expired.pem/.key (PKCS#8 keys, EC or RSA) and writes
// truststore.p12 (the CA), broker.p12 and expired.p12 (each key with its chain).
import java.io.ByteArrayInputStream;
import java.io.FileOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;

public class Pkcs12 {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        char[] password = args[1].toCharArray();
        CertificateFactory x509 = CertificateFactory.getInstance("X.509");

        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", x509.generateCertificate(
            new ByteArrayInputStream(Files.readAllBytes(dir.resolve("ca.pem")))));
        store(trust, dir.resolve("truststore.p12"), password);

        for (String name : new String[] {"broker", "expired"}) {
            Certificate[] chain = x509.generateCertificates(new ByteArrayInputStream(
                Files.readAllBytes(dir.resolve(name + ".pem")))).toArray(new Certificate[0]);
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry(name, key(dir.resolve(name + ".key")), password, chain);
            store(keys, dir.resolve(name + ".p12"), password);
        }
    }

    static PrivateKey key(Path pem) throws Exception {
        String body = Files.readString(pem)
            .replaceAll("-----[A-Z ]+-----", "")
            .replaceAll("\\s", "");
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(Base64.getDecoder().decode(body));
        try {
            return KeyFactory.getInstance("EC").generatePrivate(spec);
        } catch (java.security.spec.InvalidKeySpecException notEc) {
            return KeyFactory.getInstance("RSA").generatePrivate(spec);
        }
    }

    static void store(KeyStore store, Path path, char[] password) throws Exception {
        try (FileOutputStream out = new FileOutputStream(path.toFile())) {
            store.store(out, password);
        }
    }
}
