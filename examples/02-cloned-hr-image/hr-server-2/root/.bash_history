systemctl status hr-app
mysql -u hr_admin -pS3cure-HR-admin hr_legacy
tail -f /var/log/hr/app.log
