ATTACH DATABASE kcollect
ENGINE = Ordinary
