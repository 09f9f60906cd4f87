//go:build !vigil_noipmilan

package cli

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/ipmi/ipmitest"
)

func TestFenceAgentOptions(t *testing.T) {
	credFile := filepath.Join(t.TempDir(), "bmc")
	if err := os.WriteFile(credFile, []byte("user filed\npassword from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		addr  string
		cred  ipmi.Credentials
		opts  ipmi.LANOptions
		slept []time.Duration
		warn  string
	}{
		{name: "defaults", stdin: faBase + "action=status\n", addr: "10.9.0.2:623", cred: ipmi.Credentials{User: "fence", Password: "pw-9Vq"},
			opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}},
		{name: "old names, quotes, comments, dashes", stdin: "# from the fencer\nipaddr=\"bmc.oob\"\nlogin=admin\npasswd=\"p w\"\nipport=6230\noption=status\nnodename=h2\nport=h2\nplug=h2\nlanplus=1\nprivlvl=OPERATOR\ncipher=3\npower-timeout=5\n",
			addr: "bmc.oob:6230", cred: ipmi.Credentials{User: "admin", Password: "p w"}, opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeOperator, CipherSuites: []int{3}}},
		{name: "IPv6", stdin: "ip=fd00::9\nusername=a\npassword=b\naction=status\n", addr: "[fd00::9]:623", cred: ipmi.Credentials{User: "a", Password: "b"}, opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}},
		{name: "password script", stdin: "ip=a\nusername=u\npassword_script=vault read bmc\naction=status\n", addr: "a:623", cred: ipmi.Credentials{User: "u", Password: "from-vault read bmc"}, opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}},
		{name: "credentials file", stdin: "ip=a\ncredentials=" + credFile + "\naction=status\n", addr: "a:623", cred: ipmi.Credentials{User: "filed", Password: "from-file"}, opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}},
		{name: "unknown stdin option", stdin: faBase + "action=status\nhexadecimal_kg=00ff\n", addr: "10.9.0.2:623", cred: ipmi.Credentials{User: "fence", Password: "pw-9Vq"},
			opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}, warn: `WARNING: ignoring unknown option "hexadecimal_kg"`},
		{name: "long password warns", stdin: "ip=a\nusername=u\npassword=" + strings.Repeat("x", 21) + "\naction=status\n", addr: "a:623", cred: ipmi.Credentials{User: "u", Password: strings.Repeat("x", 21)},
			opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}, warn: "WARNING: the password is 21 bytes"},
		{name: "delay before off", stdin: faBase + "action=off\ndelay=5\npower_wait=0.5\n", addr: "10.9.0.2:623", cred: ipmi.Credentials{User: "fence", Password: "pw-9Vq"},
			opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}, slept: []time.Duration{5 * time.Second, 500 * time.Millisecond}},
		{name: "no delay for status", stdin: faBase + "action=status\ndelay=5\n", addr: "10.9.0.2:623", cred: ipmi.Credentials{User: "fence", Password: "pw-9Vq"},
			opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeAdministrator}},
		{name: "command line short and long", args: []string{"-o", "status", "--ip", "h", "-u6231", "-l", "u", "--password-script=vault", "-L", "operator", "--cipher=17", "-n", "h2", "-v"},
			addr: "h:6231", cred: ipmi.Credentials{User: "u", Password: "from-vault"}, opts: ipmi.LANOptions{Privilege: ipmi.PrivilegeOperator, CipherSuites: []int{17}}, warn: "DEBUG: connecting to h:6231 as u"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newFAWorld()
			var stdout, stderr bytes.Buffer
			if code := w.env(tt.stdin).run(tt.args, &stdout, &stderr); code > 2 || w.dials != 1 {
				t.Fatalf("exit %d, %d dials\nstderr: %s", code, w.dials, &stderr)
			}
			if w.addr != tt.addr || w.cred != tt.cred || fmt.Sprint(w.opts) != fmt.Sprint(tt.opts) {
				t.Errorf("dialled %s %#v %+v (password %q), want %s %#v %+v (password %q)", w.addr, w.cred, w.opts, w.cred.Password, tt.addr, tt.cred, tt.opts, tt.cred.Password)
			}
			if !slices.Equal(w.slept, tt.slept) {
				t.Errorf("slept %v, want %v", w.slept, tt.slept)
			}
			if !strings.Contains(stderr.String(), tt.warn) || (tt.warn == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", &stderr, tt.warn)
			}
		})
	}
}

func TestFenceAgentBadOptions(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		msg   string
	}{
		{name: "unknown action", stdin: faBase + "action=dance\n", msg: `action: unknown action "dance": give one of on, off, reboot`},
		{name: "no address", stdin: "username=a\npassword=b\naction=off\n", msg: "You have to enter fence address"},
		{name: "no user", stdin: "ip=a\npassword=b\naction=off\n", msg: "You have to set login name"},
		{name: "credentials and password", stdin: faBase + "credentials=/etc/vigil/bmc\n", msg: "credentials and username/password both given"},
		{name: "IPMI 1.5", stdin: faBase + "lanplus=0\n", msg: "lanplus: lanplus=0 asks for IPMI 1.5"},
		{name: "cycle", stdin: faBase + "method=cycle\n", msg: `method "cycle": a power cycle may be answered before the host is off`},
		{name: "cipher 0", stdin: faBase + "cipher=0\n", msg: "cipher suite 0 has no authentication"},
		{name: "cipher word", stdin: faBase + "cipher=best\n", msg: `cipher "best" is not a number`},
		{name: "user privilege", stdin: faBase + "privlvl=user\n", msg: `privlvl "user" cannot control power`},
		{name: "port", stdin: faBase + "ipport=70000\n", msg: `ipport "70000" is not a port`},
		{name: "timeout", stdin: faBase + "power_timeout=soon\n", msg: `power_timeout: "soon" is not a time in seconds`},
		{name: "boolean", stdin: faBase + "verbose=maybe\n", msg: `verbose="maybe" is not a boolean`},
		{name: "long user", stdin: "ip=a\nusername=" + strings.Repeat("u", 17) + "\npassword=b\naction=off\n", msg: "user name is 17 bytes"},
		{name: "password script fails", stdin: "ip=a\nusername=u\npassword_script=fail\naction=off\n", msg: "password_script: exit status 1"},
		{name: "unknown flag", args: []string{"--ip=a", "--kg=00"}, msg: `unknown option "--kg=00"`},
		{name: "missing value", args: []string{"--ip"}, msg: "option --ip needs a value"},
		{name: "stray argument", args: []string{"off"}, msg: `unexpected argument "off"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newFAWorld()
			var stdout, stderr bytes.Buffer
			if code := w.env(tt.stdin).run(tt.args, &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), "ERROR: "+tt.msg) && !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("stderr %q, want %q", &stderr, tt.msg)
			}
			if w.dials != 0 || len(w.bmc.Calls()) != 0 {
				t.Errorf("the BMC was used: %d dials, calls %v", w.dials, w.bmc.Calls())
			}
		})
	}
}

func TestFenceAgentMetadata(t *testing.T) {
	w := newFAWorld()
	var stdout, stderr bytes.Buffer
	if code := w.env("action=metadata\n").run(nil, &stdout, &stderr); code != 0 || w.dials != 0 {
		t.Fatalf("exit %d, %d dials: %s", code, w.dials, &stderr)
	}
	var md struct {
		XMLName   xml.Name `xml:"resource-agent"`
		Name      string   `xml:"name,attr"`
		Shortdesc string   `xml:"shortdesc,attr"`
		Longdesc  string   `xml:"longdesc"`
		Params    []struct {
			Name       string `xml:"name,attr"`
			Required   string `xml:"required,attr"`
			Deprecated string `xml:"deprecated,attr"`
			Getopt     struct {
				Mixed string `xml:"mixed,attr"`
			} `xml:"getopt"`
			Content struct {
				Type    string `xml:"type,attr"`
				Default string `xml:"default,attr"`
			} `xml:"content"`
			Shortdesc string `xml:"shortdesc"`
		} `xml:"parameters>parameter"`
		Actions []struct {
			Name string `xml:"name,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal(stdout.Bytes(), &md); err != nil {
		t.Fatalf("metadata is not XML: %v\n%s", err, &stdout)
	}
	if md.Name != "fence_vigil" || md.Shortdesc == "" || !strings.Contains(md.Longdesc, "fence_ipmilan's options") {
		t.Errorf("resource-agent %q %q %q", md.Name, md.Shortdesc, md.Longdesc)
	}
	params := map[string]string{}
	for _, p := range md.Params {
		params[p.Name] = fmt.Sprintf("required=%s deprecated=%s type=%s default=%s getopt=%s", p.Required, p.Deprecated, p.Content.Type, p.Content.Default, p.Getopt.Mixed)
		if p.Shortdesc == "" {
			t.Errorf("parameter %s has no shortdesc", p.Name)
		}
	}
	for name, want := range map[string]string{
		"action":          "required=1 deprecated= type=string default=reboot getopt=-o, --action=[action]",
		"ip":              "required=1 deprecated= type=string default= getopt=-a, --ip=[ip]",
		"ipaddr":          "required=0 deprecated=1 type=string default= getopt=-a, --ip=[ip]",
		"username":        "required=0 deprecated= type=string default= getopt=-l, --username=[username]",
		"password_script": "required=0 deprecated= type=string default= getopt=-S, --password-script=[password_script]",
		"lanplus":         "required=0 deprecated= type=boolean default=1 getopt=-P, --lanplus",
		"privlvl":         "required=0 deprecated= type=select default=administrator getopt=-L, --privlvl=[privlvl]",
		"power_timeout":   "required=0 deprecated= type=second default=20 getopt=--power-timeout=[power_timeout]",
		"port":            "required=0 deprecated=1 type=string default= getopt=-n, --plug=[plug]",
	} {
		if params[name] != want {
			t.Errorf("parameter %s: %q, want %q", name, params[name], want)
		}
	}
	var actions []string
	for _, a := range md.Actions {
		actions = append(actions, a.Name)
	}
	if want := []string{"on", "off", "reboot", "status", "monitor", "list", "metadata", "validate-all"}; !slices.Equal(actions, want) {
		t.Errorf("actions %v, want %v", actions, want)
	}
}

func TestCommandArgs(t *testing.T) {
	for _, c := range []struct {
		argv, want []string
	}{
		{[]string{"/usr/bin/vigil", "status"}, []string{"status"}},
		{[]string{"/usr/sbin/fence_vigil"}, []string{"fence-agent"}},
		{[]string{"fence_vigil", "-o", "status"}, []string{"fence-agent", "-o", "status"}},
		{nil, nil},
	} {
		if got := CommandArgs(c.argv); !slices.Equal(got, c.want) {
			t.Errorf("CommandArgs(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"fence-agent", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "usage: vigil fence-agent") {
		t.Errorf("fence-agent --help: exit %d\n%s%s", code, &stdout, &stderr)
	}
}

// TestFenceAgentLAN runs the agent with the real driver against the
// in-process BMC.
func TestFenceAgentLAN(t *testing.T) {
	s, err := ipmitest.NewServer(ipmitest.ServerOptions{User: "fence", Password: "pw-9Vq"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	host, port, _ := strings.Cut(s.Addr(), ":")
	stdin := "ip=" + host + "\nipport=" + port + "\nusername=fence\npassword=pw-9Vq\nprivlvl=operator\n"
	for _, c := range []struct {
		action string
		code   int
		stdout string
	}{
		{"status", 0, "Status: ON\n"},
		{"off", 0, "Success: Powered OFF\n"},
		{"status", 2, "Status: OFF\n"},
		{"reboot", 0, "Success: Rebooted\n"},
	} {
		env := fenceAgentEnv
		env.stdin = strings.NewReader(stdin + "action=" + c.action + "\n")
		var stdout, stderr bytes.Buffer
		if code := env.run(nil, &stdout, &stderr); code != c.code || stdout.String() != c.stdout {
			t.Errorf("%s: exit %d, %q, want %d, %q\n%s", c.action, code, &stdout, c.code, c.stdout, &stderr)
		}
	}
	// The reboot found the host off: only on.
	if got, want := s.Controls(), []string{"off", "on"}; !slices.Equal(got, want) {
		t.Errorf("chassis controls %v, want %v", got, want)
	}
}
