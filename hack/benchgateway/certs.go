package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// benchCerts are the files of the TLS variants' certificate: cert and key
// (PEM) for the gateway, pem (both) for HAProxy.
type benchCerts struct {
	cert, key, pem string
}

// benchTLSClient trusts the run's self-signed certificate (the benchmark's
// own checks only; wrk does not verify).
var benchTLSClient = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a certificate made for this run

// writeBenchCerts makes a self-signed ECDSA P-256 certificate for routeHost
// and 127.0.0.1, valid for a day, into dir.
func writeBenchCerts(dir string) (benchCerts, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return benchCerts{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: routeHost}, DNSNames: []string{routeHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return benchCerts{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return benchCerts{}, err
	}
	crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	c := benchCerts{cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), pem: filepath.Join(dir, "tls.pem")}
	for path, b := range map[string][]byte{c.cert: crtPEM, c.key: keyPEM, c.pem: append(append([]byte{}, crtPEM...), keyPEM...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return benchCerts{}, err
		}
	}
	return c, nil
}
