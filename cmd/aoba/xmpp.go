package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// XMPPAddr returns the address the XMPP client listener is bound to, or ""
// when it is off or before Run.
func (m *Main) XMPPAddr() string {
	if m.xmppLn == nil {
		return ""
	}
	return m.xmppLn.Addr().String()
}

// xmppTLS returns the STARTTLS configuration of the XMPP listener: the
// certificate of AOBA_TLS_CERT and AOBA_TLS_KEY, or, in the embedded mode
// without them, a self-signed one for AOBA_DOMAIN kept in the data
// directory (generated at the first start, and logged). Scaled out, a
// listener without a configured certificate is an error: every pod must
// present the same one. With no listener configured it returns nil.
func (m *Main) xmppTLS() (*tls.Config, error) {
	c := m.Config
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("AOBA_TLS_CERT and AOBA_TLS_KEY go together")
	}
	if c.XMPPAddr == "" {
		return nil, nil
	}
	certFile, keyFile := c.TLSCert, c.TLSKey
	if certFile == "" {
		if c.mode() != "embedded" {
			return nil, errors.New("AOBA_XMPP_ADDR needs AOBA_TLS_CERT and AOBA_TLS_KEY when AOBA_MONGO_URI or AOBA_REDIS_URL is set: every pod must present the same certificate")
		}
		certFile, keyFile = filepath.Join(c.DataDir, "xmpp-cert.pem"), filepath.Join(c.DataDir, "xmpp-key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := selfSigned(c.Domain, certFile, keyFile); err != nil {
				return nil, fmt.Errorf("generate the XMPP certificate: %w", err)
			}
			m.Logger.Warn("generated a self-signed XMPP certificate: clients must accept it, or set AOBA_TLS_CERT and AOBA_TLS_KEY",
				"cert", certFile, "domain", c.Domain)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the XMPP certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// selfSigned writes a self-signed ECDSA certificate for domain (and its
// conference subdomain), valid for ten years, and its key.
func selfSigned(domain, certFile, keyFile string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain},
		DNSNames:  []string{domain, "conference." + domain},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
