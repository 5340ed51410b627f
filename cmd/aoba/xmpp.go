package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aoba-chat/aoba/xmpp"
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
			if err := xmpp.WriteSelfSigned(c.Domain, certFile, keyFile); err != nil {
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
