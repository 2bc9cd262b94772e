package emuproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
)

// SDK says where one emulator of the Cloud SDK is and how to run it. Argument
// lists may use the placeholders of [Start]; JavaArgs also "{JAR}".
type SDK struct {
	JarEnv     string   // variable naming the jar directly, such as PUBSUB_EMULATOR_JAR
	JarGlob    string   // the jar below an SDK root, slash-separated; the last match wins
	JavaArgs   []string // run the jar: the arguments after java
	GcloudArgs []string // run it through gcloud: the arguments after gcloud
}

// Find returns the argv that starts the emulator: java with the jar (found
// through JarEnv, $CLOUDSDK_ROOT_DIR, the gcloud on PATH with its symbolic
// links resolved, or the usual SDK locations), preferred because it is one
// process, or else gcloud (a python process that forks java). java is
// $JAVA_HOME/bin/java or the one on PATH; both ways need it. The error says
// what is missing.
func (s SDK) Find() ([]string, error) {
	java := findJava()
	if java == "" {
		return nil, errors.New("no java on PATH or in JAVA_HOME")
	}
	if jar := s.findJar(); jar != "" {
		argv := []string{java}
		for _, a := range s.JavaArgs {
			if a == "{JAR}" {
				a = jar
			}
			argv = append(argv, a)
		}
		return argv, nil
	}
	if gcloud, err := exec.LookPath("gcloud"); err == nil {
		return append([]string{gcloud}, s.GcloudArgs...), nil
	}
	return nil, fmt.Errorf("no %s, no gcloud", path.Base(s.JarGlob))
}

func findJava() string {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(java); err == nil {
			return java
		}
	}
	java, _ := exec.LookPath("java")
	return java
}

func (s SDK) findJar() string {
	if s.JarEnv != "" {
		if j := os.Getenv(s.JarEnv); j != "" {
			if _, err := os.Stat(j); err == nil {
				return j
			}
		}
	}
	for _, r := range sdkRoots() {
		m, _ := filepath.Glob(filepath.Join(r, filepath.FromSlash(s.JarGlob)))
		if len(m) > 0 {
			sort.Strings(m)
			return m[len(m)-1]
		}
	}
	return ""
}

// sdkRoots lists the places where a Cloud SDK may be installed, best first.
func sdkRoots() []string {
	var roots []string
	if r := os.Getenv("CLOUDSDK_ROOT_DIR"); r != "" {
		roots = append(roots, r)
	}
	if g, err := exec.LookPath("gcloud"); err == nil {
		if real, err := filepath.EvalSymlinks(g); err == nil {
			roots = append(roots, filepath.Dir(filepath.Dir(real))) // ROOT/bin/gcloud
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, "google-cloud-sdk"))
	}
	return append(roots, "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk",
		"/opt/google-cloud-sdk", "/usr/local/google-cloud-sdk", "/snap/google-cloud-cli/current")
}
