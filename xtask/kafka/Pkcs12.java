// Writes PKCS12 stores and a password-protected copy of the client key from the harness's PEM
// files. Run with the JDK's single-file launcher:
//   java xtask/kafka/Pkcs12.java <tls dir> <password>
// It reads ca.pem, broker.pem/.key, expired.pem/.key and client.pem/.key (PKCS#8 keys, EC or RSA)
// and writes, each protected by <password>:
// - truststore.p12 (the CA), broker.p12 and expired.p12 (each key with its chain), which brokers
//   older than Kafka 2.7 read, as they read no PEM stores (KIP-651);
// - client.p12, the client's key with its chain, in the JDK's default PKCS12 format;
// - client.enc.key, the client's key as an encrypted PKCS#8 PEM ("ENCRYPTED PRIVATE KEY"):
//   PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, what `openssl pkcs8 -topk8 -v2 aes-256-cbc
//   -v2prf hmacWithSHA256` writes, for clients that take `ssl.key.password`.
import java.io.ByteArrayInputStream;
import java.io.FileOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.AlgorithmParameters;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.EncryptedPrivateKeyInfo;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.PBEParameterSpec;

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

        for (String name : new String[] {"broker", "expired", "client"}) {
            Certificate[] chain = x509.generateCertificates(new ByteArrayInputStream(
                Files.readAllBytes(dir.resolve(name + ".pem")))).toArray(new Certificate[0]);
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry(name, key(dir.resolve(name + ".key")), password, chain);
            store(keys, dir.resolve(name + ".p12"), password);
        }
        Files.writeString(dir.resolve("client.enc.key"),
            encrypted(key(dir.resolve("client.key")), password));
    }

    // The key as PEM of an EncryptedPrivateKeyInfo. The JDK's cipher for PBES2 with these two
    // algorithms is PBEWithHmacSHA256AndAES_256; its parameters (salt, iteration count, IV)
    // encode as PBES2-params. 2048 iterations, as openssl's default: test material, which the
    // tests decrypt often.
    static String encrypted(PrivateKey key, char[] password) throws Exception {
        String scheme = "PBEWithHmacSHA256AndAES_256";
        SecureRandom random = new SecureRandom();
        byte[] salt = new byte[16];
        byte[] iv = new byte[16];
        random.nextBytes(salt);
        random.nextBytes(iv);
        Cipher cipher = Cipher.getInstance(scheme);
        cipher.init(Cipher.ENCRYPT_MODE,
            SecretKeyFactory.getInstance(scheme).generateSecret(new PBEKeySpec(password)),
            new PBEParameterSpec(salt, 2048, new IvParameterSpec(iv)));
        // The same parameters under the name "PBES2": EncryptedPrivateKeyInfo finds the
        // object identifier of that name, not of the cipher's.
        AlgorithmParameters params = AlgorithmParameters.getInstance("PBES2");
        params.init(cipher.getParameters().getEncoded());
        byte[] der = new EncryptedPrivateKeyInfo(params, cipher.doFinal(key.getEncoded()))
            .getEncoded();
        return "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
            + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
            + "\n-----END ENCRYPTED PRIVATE KEY-----\n";
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
