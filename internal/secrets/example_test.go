package secrets_test

import (
	"fmt"
	"strings"

	"github.com/vguard-dev/vguard/internal/secrets"
)

func ExampleScanner_Scan() {
	// One key for every scanner whose fingerprints should compare (here a
	// fixed one; keep a real key as secret as the secrets it fingerprints).
	key := []byte("example fingerprint key, 32 byte")
	s, err := secrets.NewScannerWithKey(secrets.Builtin(), key)
	if err != nil {
		panic(err)
	}
	env := "APP_ENV=production\nAWS_ACCESS_KEY_ID=AKIAHBRPOIGF3CBFNOBM\nDB_PASSWORD=${DB_PASSWORD}\n"
	err = s.Scan("/etc/app/env", strings.NewReader(env), func(f secrets.Finding) {
		fmt.Println(f)
		fmt.Println(f.Offset, f.Length, f.Fingerprint[:15])
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// /etc/app/env:2: aws-access-key-id AKIA************NOBM
	// 37 20 sha256:7f237c90
}
