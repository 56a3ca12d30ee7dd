package secrets

import "testing"

// TestValueSpans: the span a finding gives is the whole value, the bytes a
// sanitizer overwrites. A value cut short at an escaped quote or at a
// ';', '&', '|' or ',' inside it would leave the rest of the secret in a
// copy called clean; one run past its end would eat the syntax around it.
func TestValueSpans(t *testing.T) {
	for _, c := range []struct {
		rule, path, content, want string
	}{
		{"password-assignment", "/opt/app/config.json", `{"db": {"password": "Xq7\"vLp92!mZr8Kw"}}`, `Xq7\"vLp92!mZr8Kw`},
		// A string opened earlier on the line holds the assignment: the value
		// ends at its closing quote, not past it into the markup or code.
		{"password-assignment", "/opt/app/index.html", `<a href="login?user=bob&password=Xq7vLp92mZr8">x</a>`, `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/cam.html", `<img src="/cam?user=admin&pwd=Xq7vLp92mZr8">`, `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/web.xml", `<env name="X" value="-Xmx1g -Ddb.password=Xq7vLp92mZr8"/>`, `Xq7vLp92mZr8`},
		{"password-assignment", "/etc/systemd/system/app.service", `Environment="JAVA_OPTS=-Xmx1g -Dspring.datasource.password=Xq7vLp92mZr8"`, `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/db.py", `conn = psycopg2.connect("dbname=hr user=hr password=Xq7vLp92mZr8")`, `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/cfg.py", `dsn = 'host=db password=Xq7vLp92mZr8'`, `Xq7vLp92mZr8`},
		{"password-assignment", "/etc/default/app", `JAVA_OPTS="-Xmx1g -Ddb.password=Xq7vLp92mZr8"`, `Xq7vLp92mZr8`},
		// A closer that ends the value before the next key=value is the
		// value's; an &amp; before the key is a URL's, not ODBC's ';'.
		{"password-assignment", "/etc/fstab", "//fs1/hr /mnt/a cifs username=hr,password=Cf9Pw7x),uid=1000 0 0\n", `Cf9Pw7x)`},
		{"password-assignment", "/etc/app.ini", "url=https://h/x?password=Pw9x)&user=hr\n", `Pw9x)`},
		{"password-assignment", "/etc/app/users.conf", "admin_password = $pbkdf2-sha256$29000$N2ZmZmZmZmY$rN3aHB1mVkHxh2x4xw0eKQkYpRmYcQ5G\n", `$pbkdf2-sha256$29000$N2ZmZmZmZmY$rN3aHB1mVkHxh2x4xw0eKQkYpRmYcQ5G`},
		{"password-assignment", "/opt/app/index.html", `<a href="/login?user=hr&amp;password=Xq7vLp92mZr8&amp;lang=en">x</a>`, `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/config.json", `{"password": "Xq7vLp92\\", "user": "hr"}`, `Xq7vLp92\\`},
		{"password-assignment", "/opt/app/.env", "DB_PASSWORD=\"Xq7\\\"vLp92mZr8Kw\"\n", `Xq7\"vLp92mZr8Kw`},
		{"password-assignment", "/opt/app/config.yaml", "db:\n  password: 'Xq7''vLp92!mZr8Kw'\n", `Xq7''vLp92!mZr8Kw`},
		{"password-assignment", "/opt/app/config.yaml", "db:\n  password: \"Xq7\\\"vLp92!mZr8Kw\" # rotated\n", `Xq7\"vLp92!mZr8Kw`},
		{"password-assignment", "/opt/app/config.yaml", "db: {user: hr, password: Xq7vLp92mZr8}\n", `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/config.yaml", "password: 'C:\\Xq7vLp92mZ\\'\n", `C:\Xq7vLp92mZ\`},
		{"password-assignment", "/opt/app/application.properties", "spring.datasource.password=Tr0ub4dor&3xyzQ\n", `Tr0ub4dor&3xyzQ`},
		{"password-assignment", "/opt/app/ldap.properties", "ldap.bind.pwd=ab;Kx92mVq7Lp0\n", `ab;Kx92mVq7Lp0`},
		{"password-assignment", "/opt/app/app.ini", "password = Tr0ub,4dor|x7 # the old one\n", `Tr0ub,4dor|x7`},
		{"password-assignment", "/opt/app/settings.py", "DATABASES = {'default': {'PASSWORD': 'it\\'sS3cr3tXy',}}\n", `it\'sS3cr3tXy`},
		{"password-assignment", "/opt/app/app.conf", "db_password = Xq7vLp92mZr8,\n", `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/app.conf", "url=https://api.internal/v1?password=Xq7&vLp92&user=hr\n", `Xq7&vLp92`},
		{"password-assignment", "/etc/fstab", "//nas/hr /mnt/hr cifs username=hr,password=Xq7,vLp92,uid=1000 0 0\n", `Xq7,vLp92`},
		// Comma-separated option lists (review round 4).
		{"password-assignment", "/etc/fstab", "//fs1/hr /mnt/hr cifs username=hr,password=CifsPw9x,uid=1000 0 0\n", `CifsPw9x`},
		{"password-assignment", "/etc/fstab", "//fs1/hr /mnt/hr cifs username=hr,password=CifsPw9z 0 0\n", `CifsPw9z`},
		{"password-assignment", "/etc/fstab", "//fs1/hr /mnt/hr cifs password=CifsPw9y,username=hr 0 0\n", `CifsPw9y`},
		{"password-assignment", "/root/.bash_history", "mount -t cifs -o username=hr,password=CifsPw9q //fs1/hr /mnt\n", `CifsPw9q`},
		{"password-assignment", "/root/.bash_history", "helm install hr ./chart --set db.user=hr,db.password=HelmPw9xQ\n", `HelmPw9xQ`},
		{"password-assignment", "/root/.bash_history", "helm upgrade hr ./chart --set db.password=HelmPw9xR,db.user=hr\n", `HelmPw9xR`},
		{"password-assignment", "/root/.bash_history", "virt-install --name hr --graphics vnc,password=VncPw9xQ7 --disk size=10\n", `VncPw9xQ7`},
		{"password-assignment", "/var/lib/cloud/instance/user-data.txt", "runcmd:\n  - mount -t cifs -o username=hr,password=CiMntPw9x //fs1/hr /mnt/hr\n", `CiMntPw9x`},
		// A declaring keyword before a string holding the assignment; shell's local.
		{"password-assignment", "/srv/db.js", "var x = \"password=JsC0nnPw7\";\n", `JsC0nnPw7`},
		{"password-assignment", "/srv/web/main.go", "var pgdsn = \"host=db1 user=hr password=GoPgPw9x dbname=hr\"\n", `GoPgPw9x`},
		{"password-assignment", "/usr/local/bin/backup.sh", "  local db_password=Bk9pPw7xQ\n", `Bk9pPw7xQ`},
		{"password-assignment", "/usr/local/bin/backup.sh", "  local password=Bk9pPw7xR\n", `Bk9pPw7xR`},
		// A trailing closer is the value's unless it closes a bracket opened before it.
		{"password-assignment", "/etc/environment", "DB_PASSWORD=EnvPw9x}\n", `EnvPw9x}`},
		{"password-assignment", "/app/.env", "JWT_SECRET=Jw7S3cr3tK3yXyZ}\n", `Jw7S3cr3tK3yXyZ}`},
		{"password-assignment", "/srv/a.env", "PASSWORD=abc)Rd9xQ7]\n", `abc)Rd9xQ7]`},
		{"password-assignment", "/etc/app/app.conf", "opts = (password=Xq7vLp92mZr8)\n", `Xq7vLp92mZr8`},
		{"password-assignment", "/opt/app/cfg.txt", "run \"password=Xq7vLp92mZr8)\"\n", `Xq7vLp92mZr8)`},
		{"password-assignment", "/opt/app/cfg.txt", "run(\"password=Xq7vLp92mZr8\")\n", `Xq7vLp92mZr8`},
		// &amp; in markup ends the value.
		{"password-assignment", "/srv/page.html", "<form action=\"/login?password=HtmlPw9y&amp;x=1\"></form>\n", `HtmlPw9y`},
		{"password-assignment", "/srv/page.xml", "<url>/login?password=HtmlPw9z&#38;x=1</url>\n", `HtmlPw9z`},
		// A value in escaped quotes inside a string.
		{"password-assignment", "/usr/share/augeas/lenses/tests/test_x.aug", "let conf = \"\nvnc_password = \\\"Vn9cPw7xQ\\\"\n\"\n", `Vn9cPw7xQ`},
		// GKeyFile and yum/dnf .repo values take the rest of the line.
		{"password-assignment", "/etc/NetworkManager/system-connections/corp.nmconnection", "[wifi-security]\npassword=Corp Wifi Pass 9x\n", `Corp Wifi Pass 9x`},
		{"password-assignment", "/etc/NetworkManager/system-connections/corp", "[wifi-security]\npsk-flags=0\npassword=Corp Wifi Pass 9x\n", `Corp Wifi Pass 9x`},
		{"password-assignment", "/etc/yum.repos.d/corp.repo", "[corp]\nusername=hr\npassword=Yum9 Repo Pw9x\n", `Yum9 Repo Pw9x`},
		{"password-assignment", "/etc/yum.repos.d/corp.repo", "[corp]\npassword=Yum Repo Pw9x\n", `Yum Repo Pw9x`},
		{"mysql-cnf-password", "/root/.my.cnf", "[client]\npassword=Tr0ub4dor&3xyzQ\n", `Tr0ub4dor&3xyzQ`},
		{"mysql-cli-password", "/root/.bash_history", "mysql -u root -p\"S3cr\\\"t9Xk2\" hr\n", `S3cr\"t9Xk2`},
		{"mysql-cli-password", "/root/.bash_history", "mysql -uroot -pS3cr,t9Xk2;ls\n", `S3cr,t9Xk2`},
		{"mysql-cli-password", "/root/.bash_history", "mysql -uroot -pS3cr9Xk2|tee x\n", `S3cr9Xk2`},
		{"cli-password-env", "/root/.bash_history", "PGPASSWORD='ab''cd9Xk2' psql -h db1\n", `ab''cd9Xk2`},
		{"sshpass-password", "/root/.bash_history", "sshpass -p \"S3cr\\\"t9Xk2\" ssh root@db1\n", `S3cr\"t9Xk2`},
		{"mysql-cnf-password", "/root/.my.cnf", "[client]\npassword=\"z2o\\\"CtIsjhvNK4p\"\n", `z2o\"CtIsjhvNK4p`},
		{"wordpress-db-password", "/var/www/wp-config.php", `define( 'DB_PASSWORD', 'z2o\'CtIsjhvNK4p' );`, `z2o\'CtIsjhvNK4p`},
		{"cloud-init-password", "/var/lib/cloud/instance/user-data.txt", "#cloud-config\npassword: 'z2o''CtIsjhvNK4p'\n", `z2o''CtIsjhvNK4p`},
		{"db-connection-uri", "/etc/app/db.conf", "url = \"postgres://app:p@ss:w0rd9X@db.internal:5432/hr\"\n", `p@ss:w0rd9X`},
		{"db-connection-uri", "/etc/app/db.conf", "url = postgres://app:w0rd9Xq7@db.internal:5432/hr?opt=a@b\n", `w0rd9Xq7`},
		{"db-connection-uri", "/etc/app/db.conf", "url = mongodb://app:p@ss9Xq7@h1,h2/admin#x@y\n", `p@ss9Xq7`},
		{"db-connection-uri", "/etc/app/db.conf", "url = postgres://app:p#ss9w0rd9X@db.internal:5432/hr\n", `p#ss9w0rd9X`},
		{"db-connection-uri", "/etc/app/db.conf", "url = postgres://app:p?ss9w0rd9X@db.internal:5432/hr\n", `p?ss9w0rd9X`},
		{"db-connection-uri", "/etc/app/db.conf", "url = postgres://app:w0rd9Xq7@db1?application_name=a@b\n", `w0rd9Xq7`},
		{"db-connection-uri", "/etc/app/db.conf", "url = postgres://app:Xq7vLp9@ss#w0rd9X@db1/hr\n", `Xq7vLp9`},
		// A '#' after '=' is the value's; after a YAML ':' a comment.
		{"password-assignment", "/opt/app/application.properties", "spring.datasource.password=#Tr0ub4dor3xyzQ\n", `#Tr0ub4dor3xyzQ`},
		{"password-assignment", "/opt/app/.env", "DB_PASSWORD=#Tr0ub4dor3xyzQ\n", `#Tr0ub4dor3xyzQ`},
		{"password-assignment", "/opt/app/app.ini", "password = #Tr0ub4dor3xyzQ\n", `#Tr0ub4dor3xyzQ`},
		{"mysql-cnf-password", "/root/.my.cnf", "[client]\npassword=#Tr0ub4dor3xyzQ\n", `#Tr0ub4dor3xyzQ`},
		// A backslash escapes a shell's ';', '&' and '|' into the word.
		{"mysql-cli-password", "/root/.bash_history", "mysql -uroot -pS3cr\\&t9Xk2Qz hr\n", `S3cr\&t9Xk2Qz`},
		{"sshpass-password", "/root/.bash_history", "sshpass -p Tr0ub\\;4dorXq ssh root@db1\n", `Tr0ub\;4dorXq`},
		{"cli-password-env", "/root/.bash_history", "PGPASSWORD=ab\\;cd9Xk2x psql\n", `ab\;cd9Xk2x`},
		// A quote inside an unquoted value is the value's, unless a quote
		// before the key opened a string holding the assignment.
		{"password-assignment", "/opt/app/application.properties", "spring.datasource.password=Tr0u\"b4dor3xyzQ\n", `Tr0u"b4dor3xyzQ`},
		{"password-assignment", "/opt/app/application.properties", "spring.datasource.password=Tr0ub4dor3`xyzQ\n", "Tr0ub4dor3`xyzQ"},
		{"password-assignment", "/opt/app/application.properties", "spring.datasource.password=Xq7'vLp92mZr8\n", `Xq7'vLp92mZr8`},
		{"password-assignment", "/opt/app/config.yaml", "\"password\": Xq7v\"Lp92mZr8\n", `Xq7v"Lp92mZr8`},
		{"password-assignment", "/opt/app/Main.java", "String dsn = \"password=Xq7vLp92mZr8\";\n", `Xq7vLp92mZr8`},
		{"password-assignment", "/root/setup.sh", "echo 'DB_PASSWORD=Xq7vLp92mZr8' >> .env\n", `Xq7vLp92mZr8`},
	} {
		s := builtinScanner(t)
		var got []string
		for _, f := range scanString(t, s, c.path, c.content) {
			if f.RuleID == c.rule {
				got = append(got, c.content[f.Offset:f.Offset+f.Length])
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s in %q: value %q, want %q", c.rule, c.content, got, c.want)
		}
	}
}
